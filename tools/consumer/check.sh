#!/usr/bin/env bash
# What an importer gets: a throwaway app module (go 1.24) imports the
# library from this checkout, and its module graph must hold only the
# library, coder/websocket and the small test libraries of the design
# (testify, goleak, and their own dependencies), and its go line must stay.
# Run from anywhere: bash tools/consumer/check.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
cd "$app"
cat > go.mod <<MOD
module example.com/app

go 1.24

require github.com/segrelay/relay v0.0.0

replace github.com/segrelay/relay => $repo
MOD
cat > main.go <<'GO'
package main

import (
	"net/http"

	relay "github.com/segrelay/relay"
)

func main() {
	http.Handle("/live/", http.StripPrefix("/live", relay.NewHub()))
}
GO
export GOWORK=off GOFLAGS=-mod=mod
go mod tidy
go build ./...
allowed='^(example\.com/app|github\.com/segrelay/relay|github\.com/coder/websocket|github\.com/stretchr/testify|github\.com/stretchr/objx|github\.com/davecgh/go-spew|github\.com/pmezard/go-difflib|gopkg\.in/yaml\.v3|go\.yaml\.in/yaml/v3|gopkg\.in/check\.v1|github\.com/kr/pretty|github\.com/kr/text|github\.com/rogpeppe/go-internal|go\.uber\.org/goleak)$'
extra=$(go list -m -f '{{.Path}}' all | grep -Ev "$allowed" || true)
if [ -n "$extra" ]; then
	echo "consumer check: FAIL: an importer's module graph holds more than the design allows:" >&2
	echo "$extra" >&2
	exit 1
fi
goline=$(go mod edit -json | sed -n 's/^\t"Go": "\(.*\)",$/\1/p')
if [ "$goline" != "1.24" ]; then
	echo "consumer check: FAIL: importing raised the app's go line from 1.24 to $goline" >&2
	exit 1
fi
echo "consumer check: ok: $(go list -m all | wc -l) modules in the graph, go line 1.24:"
go list -m all | sed 's/^/  /'
