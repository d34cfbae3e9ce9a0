// Command etcd wraps the upstream etcd server main (the Debian package is too old for 1.3x API servers).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
