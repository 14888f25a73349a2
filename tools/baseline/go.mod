module github.com/segrelay/relay/tools/baseline

go 1.24

require (
	github.com/gorilla/websocket v1.5.3
	github.com/segrelay/relay v0.0.0
)

require github.com/coder/websocket v1.8.15 // indirect

// The benchmark beside the baseline measures the library of this checkout.
replace github.com/segrelay/relay => ../..
