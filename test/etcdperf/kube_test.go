package etcdperf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddockhq/paddock/internal/k8sharness"
)

var (
	kubeObjects = flag.Int("etcdperf.kube.objects", 5000, "ConfigMaps created per backend")
	kubeClients = flag.Int("etcdperf.kube.clients", 16, "concurrent creating clients (each its own HTTP/2 connection)")
	kubeValue   = flag.Int("etcdperf.kube.value", 1024, "bytes of data per ConfigMap")
	kubeLists   = flag.Int("etcdperf.kube.lists", 5, "lists of all the ConfigMaps per kind (unpaged, and paged by 500)")
)

// kubeResult is one backend's figures.
type kubeResult struct {
	Backend   string  `json:"backend"`
	Cache     bool    `json:"watch_cache"`
	Objects   int     `json:"objects"`
	Clients   int     `json:"clients"`
	CreatePS  float64 `json:"creates_per_sec"`
	CreateP50 float64 `json:"create_p50_ms"`
	CreateP99 float64 `json:"create_p99_ms"`
	// Lists: per full list of all objects (a paged one is all its pages).
	ListMS      []float64 `json:"list_ms"`
	PagedMS     []float64 `json:"paged_list_ms"`
	ListObjPS   float64   `json:"list_objects_per_sec"`
	PagedObjPS  float64   `json:"paged_list_objects_per_sec"`
	StartupSecs float64   `json:"apiserver_startup_s"`
}

// TestKubeCompare runs a real kube-apiserver on Paddock and on etcd 3.7
// (standalone each, fsync on, fresh data) and measures object create and
// list throughput through its REST API: N ConfigMaps created by K
// concurrent clients, then listed -etcdperf.kube.lists times unpaged and
// paged by 500. Twice per backend: with the apiserver's watch cache (the
// default: lists are served from the cache after a progress request to
// the backend) and with --watch-cache=false (every list is Range requests
// to the backend).
func TestKubeCompare(t *testing.T) {
	k8sharness.Tools(t)
	objects, clients, lists := *kubeObjects, *kubeClients, *kubeLists
	if !*runFull {
		objects, clients, lists = 60, 4, 1
	}
	caches := []bool{true, false}
	if !*runFull {
		caches = caches[:1]
	}
	var results []*kubeResult
	for _, cache := range caches {
		for _, kind := range kinds {
			r := kubeRun(t, kind, cache, objects, clients, lists)
			t.Logf("%s cache=%v: %.0f creates/s (p50 %.1f ms, p99 %.1f ms); list %v ms (%.0f objects/s), paged %v ms (%.0f objects/s)",
				kind, cache, r.CreatePS, r.CreateP50, r.CreateP99, r.ListMS, r.ListObjPS, r.PagedMS, r.PagedObjPS)
			results = append(results, r)
		}
	}
	if *runFull {
		writeSection(t, "kube-compare", kubeMarkdown(results, objects, clients))
	}
}

func kubeRun(t *testing.T, kind string, cache bool, objects, clients, lists int) *kubeResult {
	c := startCluster(t, kind, 1)
	defer c.stop()
	flags := map[string]string{}
	if !cache {
		flags["watch-cache"] = "false"
	}
	api := k8sharness.StartAPIServer(t, c.endpoints[0], &k8sharness.APIServerOptions{Flags: flags})
	defer api.Stop()
	res := &kubeResult{Backend: kind, Cache: cache, Objects: objects, Clients: clients, StartupSecs: api.StartupTime.Seconds()}
	ns := "bench"
	hc := apiClient(t, api)
	if code, body := do(t, hc, api, "POST", "/api/v1/namespaces", fmt.Sprintf(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q}}`, ns)); code != http.StatusCreated {
		t.Fatalf("create namespace: %d %s", code, body)
	}
	data := strings.Repeat("x", *kubeValue)

	// Create: client i makes objects i, i+K, ...
	lat := make([][]time.Duration, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := apiClient(t, api)
			for j := i; j < objects; j += clients {
				body := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm-%06d"},"data":{"v":%q}}`, j, data)
				t0 := time.Now()
				code, out := do(t, hc, api, "POST", "/api/v1/namespaces/"+ns+"/configmaps", body)
				if code != http.StatusCreated {
					t.Errorf("%s: create cm-%06d: %d %s", kind, j, code, out)
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	all := slices.Concat(lat...)
	res.CreatePS = float64(len(all)) / elapsed.Seconds()
	res.CreateP50, res.CreateP99 = pctMS(all, 0.5), pctMS(all, 0.99)

	// Lists, unpaged and paged; every one must see every object.
	path := "/api/v1/namespaces/" + ns + "/configmaps"
	var listTotal, pagedTotal time.Duration
	for range lists {
		t0 := time.Now()
		n, pages := listAll(t, hc, api, path, 0)
		d := time.Since(t0)
		if n != objects || pages != 1 {
			t.Fatalf("%s: unpaged list: %d objects in %d pages, want %d in 1", kind, n, pages, objects)
		}
		res.ListMS = append(res.ListMS, math.Round(float64(d.Microseconds())/100)/10)
		listTotal += d

		t0 = time.Now()
		n, pages = listAll(t, hc, api, path, 500)
		d = time.Since(t0)
		if want := (objects + 499) / 500; n != objects || pages != want {
			t.Fatalf("%s: paged list: %d objects in %d pages, want %d in %d", kind, n, pages, objects, want)
		}
		res.PagedMS = append(res.PagedMS, math.Round(float64(d.Microseconds())/100)/10)
		pagedTotal += d
	}
	res.ListObjPS = float64(objects*lists) / listTotal.Seconds()
	res.PagedObjPS = float64(objects*lists) / pagedTotal.Seconds()
	return res
}

// listAll lists path (limit 0: in one response) and returns the number of
// items and of pages.
func listAll(t *testing.T, hc *http.Client, api *k8sharness.APIServer, path string, limit int) (items, pages int) {
	t.Helper()
	cont := ""
	for {
		q := url.Values{}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(limit))
		}
		if cont != "" {
			q.Set("continue", cont)
		}
		p := path
		if len(q) > 0 {
			p += "?" + q.Encode()
		}
		code, body := do(t, hc, api, "GET", p, "")
		if code != http.StatusOK {
			t.Fatalf("list %s: %d %s", p, code, body)
		}
		var l struct {
			Metadata struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatalf("list %s: %v", p, err)
		}
		items += len(l.Items)
		pages++
		if cont = l.Metadata.Continue; cont == "" {
			return items, pages
		}
	}
}

// apiClient is an HTTP/2 client of api (its own connection) trusting its
// serving CA.
func apiClient(t testing.TB, api *k8sharness.APIServer) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(api.CAData) {
		t.Fatal("apiserver CA: no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}
}

func do(t testing.TB, hc *http.Client, api *k8sharness.APIServer, method, path, body string) (int, []byte) {
	req, err := http.NewRequestWithContext(context.Background(), method, api.URL+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+api.Token)
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func pctMS(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := max(0, min(int(math.Ceil(p*float64(len(s))))-1, len(s)-1))
	return math.Round(float64(s[i].Microseconds())/100) / 10
}

func kubeMarkdown(results []*kubeResult, objects, clients int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s, %s; load average %s at the end. %d ConfigMaps of %d bytes created by %d concurrent clients (each its own HTTP/2 connection), then %d unpaged lists and %d lists paged by 500 (each list reads all %d; times are per full list).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine(), loadAvg(), objects, *kubeValue, clients, *kubeLists, *kubeLists, objects)
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", commandLine())
	b.WriteString("| watch cache | backend | creates/s | create p50 / p99 ms | unpaged list ms (each) | objects/s | paged list ms (each) | objects/s |\n")
	b.WriteString("|---|---|---:|---:|---|---:|---|---:|\n")
	for _, r := range results {
		cache := "on (default)"
		if !r.Cache {
			cache = "off (`--watch-cache=false`)"
		}
		name := map[string]string{"paddock": "Paddock", "etcd": "etcd 3.7"}[r.Backend]
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f / %.1f | %s | %s | %s | %s |\n", cache, name, thousands(r.CreatePS), r.CreateP50, r.CreateP99,
			joinMS(r.ListMS), thousands(r.ListObjPS), joinMS(r.PagedMS), thousands(r.PagedObjPS))
	}
	return b.String()
}

func joinMS(ms []float64) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%.0f", m))
	}
	return strings.Join(parts, ", ")
}
