//go:build tools

// Package tools pins kwok (the node and pod simulator) so that "go mod tidy" keeps its
// dependencies; the build script runs "go build sigs.k8s.io/kwok/cmd/kwok".
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
