// Command ipfs is kubo v0.43.1 (the reference IPFS node) for the local dev stack, exactly its cmd/ipfs main.
//
// `go install github.com/ipfs/kubo/cmd/ipfs@v0.43.1` is refused: kubo's go.mod replaces go-libp2p with a
// fork, and `go install pkg@version` rejects modules with replace directives. This wrapper module requires
// kubo and carries the same replace, so the binary is built from the same dependency graph kubo releases.
package main

import (
	"os"

	"github.com/ipfs/kubo/cmd/ipfs/kubo"
)

func main() {
	os.Exit(kubo.Start(kubo.BuildDefaultEnv))
}
