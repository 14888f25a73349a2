module github.com/segrelay/relay/tools/baseline

go 1.24

require github.com/gorilla/websocket v1.5.3
