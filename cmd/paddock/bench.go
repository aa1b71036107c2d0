package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paddockhq/paddock/bench"
)

const benchUsage = `Usage: paddock bench [flags]

Load-tests any ZooKeeper-protocol server (Paddock or Apache ZooKeeper) with
N clients, each its own session issuing one request at a time, and prints
throughput and latency percentiles. -workload and -clients take lists; every
combination runs in turn. With -etcd it load-tests an etcd v3 API instead
(Paddock's --etcd-listen or a real etcd) through etcd's Go client, each
client its own gRPC connection.

Workloads:
  create   create new nodes (value of -value bytes)
  set      setData on random nodes of a -keys key space
  get      getData on random nodes of the key space
  exists   exists on random nodes of the key space
  delete   delete the -keys pre-created nodes (stops when they run out)
  mixed    get with probability -read-ratio, otherwise set
  multi    multi transactions of -multi creates each
  list     getChildren of a node with -children children
  watch    watch storm: -clients watchers on one node, one setData fires
           them all; latency per round = until the last event arrived
  connect  connect storm: -clients sessions connect at once; latency per
           round = until the last session is established

Workloads with -etcd (keys under -root, -keys of them written first):
  put      Put of a random key (an update)
  range    linearizable Range of one random key
  txn      kube-apiserver's update: Txn If(ModRevision == rev) Then(Put)
           Else(Get), each client on keys of its own

Examples:
  paddock bench -servers 127.0.0.1:2181 -workload create,set,get -clients 1,16,64 -duration 10s
  paddock bench -workload mixed -read-ratio 0.8 -ops 100000 -o json >> results.jsonl
  paddock bench -workload watch -clients 1000 -duration 20s
  paddock bench -etcd -servers http://127.0.0.1:2379 -workload put,range,txn -clients 1,16,64 -value 1024

Flags:
`

// runBench is `paddock bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paddock bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var (
		servers   = fs.String("servers", "127.0.0.1:2181", "comma-separated server list host:port; each session picks one (-etcd: client URLs, default http://127.0.0.1:2379; client i uses the (i mod n)th)")
		workloads = fs.String("workload", "mixed", "workload(s), comma-separated: "+strings.Join(bench.Workloads, ", ")+" (-etcd: "+strings.Join(bench.EtcdWorkloads, ", ")+"; default all three)")
		etcd      = fs.Bool("etcd", false, "drive an etcd v3 API through go.etcd.io/etcd/client/v3 instead of the ZooKeeper protocol")
		clients   = fs.String("clients", "16", "number(s) of clients (sessions), comma-separated")
		duration  = fs.Duration("duration", 10*time.Second, "how long each run lasts (ignored when -ops is set)")
		ops       = fs.Int("ops", 0, "total operations per run over all clients (rounds for watch/connect); 0 = use -duration")
		valueSize = fs.Int("value", 100, "value size in bytes")
		keys      = fs.Int("keys", 1000, "key space of set/get/exists/mixed/delete, pre-created (delete: default 10000)")
		readRatio = fs.Float64("read-ratio", 0.9, "share of reads in the mixed workload, in (0,1]")
		multiOps  = fs.Int("multi", 10, "creates per multi transaction")
		children  = fs.Int("children", 1000, "children of the node the list workload lists")
		root      = fs.String("root", "/paddock-bench", "parent node of the benchmark's nodes (deleted before the run!)")
		timeout   = fs.Duration("session-timeout", 10*time.Second, "session timeout of every client")
		keep      = fs.Bool("keep", false, "leave the nodes in place after each run (default: delete -root)")
		output    = fs.String("o", "table", "output format on stdout: table or json (one JSON object per run and line)")
		jsonFile  = fs.String("json-file", "", "also append the results as JSON lines to this file")
		label     = fs.String("label", "", "label stored in the JSON results (e.g. the server's name)")
		progress  = fs.String("progress", "auto", "live progress line: auto (when stdout is a terminal), on, off")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	keysSet := set["keys"]
	known := bench.Workloads
	if *etcd {
		known = bench.EtcdWorkloads
		if !set["workload"] {
			*workloads = strings.Join(bench.EtcdWorkloads, ",")
		}
		if !set["servers"] {
			*servers = "http://127.0.0.1:2379"
		}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "paddock bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "paddock bench: "+format+"\n", a...)
		return 2
	}
	wl := splitList(*workloads)
	for _, w := range wl {
		if !slices.Contains(known, w) {
			return fail("unknown workload %q (one of %s)", w, strings.Join(known, ", "))
		}
	}
	var cl []int
	for _, c := range splitList(*clients) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			return fail("bad -clients value %q", c)
		}
		cl = append(cl, n)
	}
	if len(wl) == 0 || len(cl) == 0 {
		return fail("need at least one workload and one client count")
	}
	if *output != "table" && *output != "json" {
		return fail("-o must be table or json")
	}
	if *readRatio <= 0 || *readRatio > 1 {
		return fail("-read-ratio must be in (0,1]")
	}
	if *root == "" || *root == "/" || !strings.HasPrefix(*root, "/") {
		return fail("-root must be an absolute path other than /")
	}
	srv := splitList(*servers)
	if len(srv) == 0 {
		return fail("need -servers")
	}
	var jf *os.File
	if *jsonFile != "" {
		f, err := os.OpenFile(*jsonFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fail("%v", err)
		}
		defer f.Close()
		jf = f
	}
	showProgress := *progress == "on" || (*progress == "auto" && benchIsTTY(stdout))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var results []*bench.Result
	code := 0
	for _, w := range wl {
		for _, c := range cl {
			if ctx.Err() != nil {
				break
			}
			nkeys := *keys
			if w == "delete" && !keysSet {
				nkeys = 10000 // enough for a delete run to last a moment
			}
			cfg := bench.Config{
				Servers: srv, Workload: w, Clients: c, Duration: *duration, Ops: *ops,
				ValueSize: *valueSize, Keys: nkeys, ReadRatio: *readRatio, MultiOps: *multiOps,
				Children: *children, Root: *root, SessionTimeout: *timeout, Keep: *keep,
			}
			if showProgress {
				cfg.Progress = func(p bench.Progress) { printBenchProgress(stdout, p, *duration, *ops) }
			}
			var r *bench.Result
			var err error
			if *etcd {
				ecfg := bench.EtcdConfig{Endpoints: srv, Workload: w, Clients: c, Duration: *duration, Ops: *ops,
					ValueSize: *valueSize, Keys: *keys, Prefix: *root + "/", Keep: *keep, Progress: cfg.Progress}
				r, err = bench.RunEtcd(ctx, ecfg)
			} else {
				r, err = bench.Run(ctx, cfg)
			}
			if showProgress {
				fmt.Fprint(stdout, "\r\033[K")
			}
			if err != nil {
				fmt.Fprintf(stderr, "paddock bench: %s with %d clients: %v\n", w, c, err)
				code = 1
				continue
			}
			r.Label = *label
			results = append(results, r)
			line, _ := json.Marshal(r)
			if jf != nil {
				fmt.Fprintf(jf, "%s\n", line)
			}
			switch {
			case *output == "json":
				fmt.Fprintf(stdout, "%s\n", line)
			case len(wl)*len(cl) > 1:
				// A sweep: one line per finished run, the table at the end.
				fmt.Fprintln(stderr, r)
			}
		}
	}
	if *output == "table" && len(results) > 0 {
		bench.WriteTable(stdout, results)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "paddock bench: interrupted")
		return 130
	}
	return code
}

func printBenchProgress(w io.Writer, p bench.Progress, d time.Duration, ops int) {
	var of string
	if ops > 0 {
		of = fmt.Sprintf("%d/%d", p.Ops+p.Errors, ops)
	} else {
		of = fmt.Sprintf("%.1fs/%s", p.Elapsed.Seconds(), d)
	}
	rate := float64(p.Ops) / max(p.Elapsed.Seconds(), 1e-9)
	fmt.Fprintf(w, "\r\033[K%s clients=%d  %s  %d ok  %.0f/s  %d errors", p.Workload, p.Clients, of, p.Ops, rate, p.Errors)
}

// benchIsTTY reports whether w is a character device other than /dev/null
// (close enough to isatty without a terminal library).
func benchIsTTY(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	if null, err := os.Stat(os.DevNull); err == nil && os.SameFile(fi, null) {
		return false
	}
	return true
}
