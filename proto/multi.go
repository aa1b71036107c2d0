package proto

import "fmt"

// MultiOp is one sub-request of a multi (create, create2, createContainer,
// createTTL, delete, setData, check) or a multiRead (getChildren, getData).
type MultiOp struct {
	Type OpCode
	// Req is *CreateRequest (create, create2, createContainer),
	// *CreateTTLRequest, *DeleteRequest, *SetDataRequest,
	// *CheckVersionRequest, *GetChildrenRequest or *GetDataRequest.
	Req Record
}

// MultiRequest is MultiOperationRecord: sub-requests each behind a
// MultiHeader{type, done=false, err=-1}, ended by {-1, true, -1}.
type MultiRequest struct {
	Ops []MultiOp
}

// NewMultiSubRequest returns an empty request record for a multi sub-op
// type, or nil if the type may not appear in a multi or multiRead.
func NewMultiSubRequest(t OpCode) Record {
	switch t {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}
	case OpCreateTTL:
		return &CreateTTLRequest{}
	case OpDelete:
		return &DeleteRequest{}
	case OpSetData:
		return &SetDataRequest{}
	case OpCheck:
		return &CheckVersionRequest{}
	case OpGetChildren:
		return &GetChildrenRequest{}
	case OpGetData:
		return &GetDataRequest{}
	}
	return nil
}

// Encode appends the multi request.
func (m *MultiRequest) Encode(e *Encoder) {
	for _, op := range m.Ops {
		h := MultiHeader{Type: int32(op.Type), Done: false, Err: -1}
		h.Encode(e)
		op.Req.Encode(e)
	}
	h := MultiHeader{Type: -1, Done: true, Err: -1}
	h.Encode(e)
}

// Decode reads a multi request. An unknown sub-op type is an error.
func (m *MultiRequest) Decode(d *Decoder) {
	m.Ops = nil
	for d.Err() == nil {
		var h MultiHeader
		h.Decode(d)
		if d.Err() != nil || h.Done {
			return
		}
		t := OpCode(h.Type)
		req := NewMultiSubRequest(t)
		if req == nil {
			d.Fail(fmt.Errorf("multi: invalid sub-operation type %d", h.Type))
			return
		}
		req.Decode(d)
		m.Ops = append(m.Ops, MultiOp{Type: t, Req: req})
	}
}

// MultiResult is one entry of a MultiResponse: a sub-result of the given
// type, or an error result (Type OpError) carrying Err.
type MultiResult struct {
	Type OpCode
	Err  ErrCode
	// Resp is *CreateResponse (create), *Create2Response (create2, TTL,
	// container: reported as create2), *SetDataResponse, *GetDataResponse,
	// *GetChildrenResponse, or nil (delete, check, error).
	Resp Record
}

// MultiResponse is the reply body of multi and multiRead.
type MultiResponse struct {
	Results []MultiResult
}

// Encode appends the multi response exactly as MultiResponse.serialize does:
// an error result carries its code in both the header and an ErrorResponse.
func (m *MultiResponse) Encode(e *Encoder) {
	for _, r := range m.Results {
		var err int32
		if r.Type == OpError {
			err = int32(r.Err)
		}
		h := MultiHeader{Type: int32(r.Type), Done: false, Err: err}
		h.Encode(e)
		switch {
		case r.Type == OpError:
			er := ErrorResponse{Err: int32(r.Err)}
			er.Encode(e)
		case r.Resp != nil:
			r.Resp.Encode(e)
		}
	}
	h := MultiHeader{Type: -1, Done: true, Err: -1}
	h.Encode(e)
}

// Decode reads a multi response.
func (m *MultiResponse) Decode(d *Decoder) {
	m.Results = nil
	for d.Err() == nil {
		var h MultiHeader
		h.Decode(d)
		if d.Err() != nil || h.Done {
			return
		}
		r := MultiResult{Type: OpCode(h.Type)}
		switch r.Type {
		case OpError:
			var er ErrorResponse
			er.Decode(d)
			r.Err = ErrCode(er.Err)
		case OpCreate:
			r.Resp = &CreateResponse{}
		case OpCreate2, OpCreateTTL, OpCreateContainer:
			r.Resp = &Create2Response{}
		case OpSetData:
			r.Resp = &SetDataResponse{}
		case OpGetData:
			r.Resp = &GetDataResponse{}
		case OpGetChildren:
			r.Resp = &GetChildrenResponse{}
		case OpDelete, OpCheck:
		default:
			d.Fail(fmt.Errorf("multi: invalid result type %d", h.Type))
			return
		}
		if r.Resp != nil {
			r.Resp.Decode(d)
		}
		m.Results = append(m.Results, r)
	}
}

// DecodeConnectRequest reads a ConnectRequest. Clients up to 3.3 send no
// trailing readOnly byte; legacy reports that, so the server can answer in
// the same format (ProtocolManager).
func DecodeConnectRequest(b []byte) (req ConnectRequest, legacy bool, err error) {
	d := NewDecoder(b)
	req.ProtocolVersion = d.Int()
	req.LastZxidSeen = d.Long()
	req.TimeOut = d.Int()
	req.SessionId = d.Long()
	req.Passwd = d.Buffer()
	if d.Err() == nil && d.Remaining() == 0 {
		return req, true, nil
	}
	req.ReadOnly = d.Bool()
	return req, false, d.Err()
}

// EncodeConnectResponse appends a ConnectResponse, without the readOnly
// byte for legacy clients.
func EncodeConnectResponse(e *Encoder, r *ConnectResponse, legacy bool) {
	e.Int(r.ProtocolVersion)
	e.Int(r.TimeOut)
	e.Long(r.SessionId)
	e.Buffer(r.Passwd)
	if !legacy {
		e.Bool(r.ReadOnly)
	}
}

// StatFromPersisted builds the wire Stat from the persisted fields plus the
// two derived ones.
func StatFromPersisted(p *StatPersisted, dataLength, numChildren int32) Stat {
	return Stat{
		Czxid: p.Czxid, Mzxid: p.Mzxid, Ctime: p.Ctime, Mtime: p.Mtime,
		Version: p.Version, Cversion: p.Cversion, Aversion: p.Aversion,
		EphemeralOwner: p.EphemeralOwner, DataLength: dataLength,
		NumChildren: numChildren, Pzxid: p.Pzxid,
	}
}
