// Command gitops-health tells what Argo CD and kstatus make of Kubernetes objects, with their own
// engines: gopher-lua running an Argo CD health script, and sigs.k8s.io/cli-utils' kstatus.
//
//	gitops-health argocd SCRIPT < objects.json   Argo CD's {status, message} from a health.lua
//	gitops-health kstatus < objects.json         kstatus' {status, message, conditions}
//
// The input is one object, a JSON array of objects, or a List; the output is a JSON array with one
// result (or {"error"}) per object, in order. Exit status 1 when any object failed, 2 on bad usage
// or input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func main() {
	judge, err := judgeFromArgs(os.Args[1:])
	if err != nil {
		fail(err)
	}
	objects, err := readObjects(os.Stdin)
	if err != nil {
		fail(err)
	}
	results, failed := make([]any, 0, len(objects)), false
	for _, obj := range objects {
		res, err := judge(obj)
		if err != nil {
			res, failed = map[string]string{"error": err.Error()}, true
		}
		results = append(results, res)
	}
	out, _ := json.Marshal(results)
	fmt.Println(string(out))
	if failed {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "gitops-health: %v\n", err)
	os.Exit(2)
}

// judgeFromArgs picks the engine the subcommand names.
func judgeFromArgs(args []string) (func(map[string]any) (any, error), error) {
	switch {
	case len(args) == 2 && args[0] == "argocd":
		script, err := os.ReadFile(args[1])
		if err != nil {
			return nil, err
		}
		return func(obj map[string]any) (any, error) { return executeHealthLua(obj, string(script)) }, nil
	case len(args) == 1 && args[0] == "kstatus":
		return computeKstatus, nil
	}
	return nil, fmt.Errorf("usage: gitops-health argocd SCRIPT < objects.json | gitops-health kstatus < objects.json")
}

// readObjects accepts one object, an array of objects or a List. Objects are decoded by the API
// machinery's unstructured decoder (whole numbers as int64), as a controller hands them to Argo CD's
// health scripts and to kstatus.
func readObjects(r io.Reader) ([]map[string]any, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if json.Unmarshal(data, &raw) != nil {
		raw = []json.RawMessage{data}
	}
	var out []map[string]any
	for i, item := range raw {
		decoded, err := runtime.Decode(unstructured.UnstructuredJSONScheme, item)
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		switch o := decoded.(type) {
		case *unstructured.UnstructuredList:
			for _, it := range o.Items {
				out = append(out, it.Object)
			}
		case *unstructured.Unstructured:
			out = append(out, o.Object)
		}
	}
	return out, nil
}
