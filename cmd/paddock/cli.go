package main

import (
	"io"
	"os"

	"github.com/paddockhq/paddock/cli"
	"github.com/paddockhq/paddock/server"
)

// runCLI is `paddock cli`: a ZooKeeper shell with zkCli's commands and
// output (package cli).
func runCLI(args []string, stdout, stderr io.Writer) int {
	return cli.Main(args, os.Stdin, stdout, stderr, server.Version)
}
