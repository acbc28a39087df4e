// Command func-loader loads a function the way `func build` and `func deploy` do before
// anything else (knative.dev/func/pkg/functions: NewFunction, Initialized, Validate) and
// prints what they found, so a test can run func's own checks on this repository.
//
// Usage: func-loader PATH. Exit 0 with "name=... runtime=... initialized=true" when the
// function loads, is initialized and validates; exit 1 with func's own message otherwise.
package main

import (
	"fmt"
	"os"

	fn "knative.dev/func/pkg/functions"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: func-loader PATH")
		os.Exit(2)
	}
	f, err := fn.NewFunction(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("name=%s runtime=%s invoke=%s initialized=%t\n", f.Name, f.Runtime, f.Invoke,
		f.Initialized())
	if !f.Initialized() {
		// The words func build and func deploy stop with for such a folder.
		fmt.Fprintf(os.Stderr, "'%s' does not contain an initialized function\n", os.Args[1])
		os.Exit(1)
	}
	if err := f.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "validate: %v\n", err)
		os.Exit(1)
	}
}
