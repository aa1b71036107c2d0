package replication

import "context"

// TransferLeadership asks raft to hand leadership to member to (raft's
// leadership transfer: the leader brings to up to date, then tells it to
// campaign at once). It only starts the transfer; watch Leader() for the
// outcome. On a follower it does nothing.
func (n *Node) TransferLeadership(ctx context.Context, to uint64) error {
	return n.do(ctx, func() { n.rn.TransferLeader(to) })
}
