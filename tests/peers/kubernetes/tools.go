//go:build tools

// Package tools pins the Kubernetes main packages the test bed runs, so that "go mod tidy"
// keeps their dependencies; the build script runs "go build" on each of them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
