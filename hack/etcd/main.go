// Command etcd is upstream's etcd server, built as a module of its own so that its
// dependencies never move the Kubernetes build's.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
