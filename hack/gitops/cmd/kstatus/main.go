// Command kstatus computes the kstatus status of Kubernetes objects with sigs.k8s.io/cli-utils'
// pkg/kstatus/status.Compute: the library Flux's health checks and `kpt live status` build on.
//
// Usage: kstatus < objects.json
// The input is one object, a JSON array of objects, or a List ({"items": [...]}); the output is a
// JSON array with one {"status", "message", "conditions"} or {"error"} per object, in order. Exit
// status 1 when any object could not be computed, 2 on bad input.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status     string             `json:"status,omitempty"`
	Message    string             `json:"message,omitempty"`
	Conditions []status.Condition `json:"conditions,omitempty"`
	Error      string             `json:"error,omitempty"`
}

func main() {
	objects, err := readObjects(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kstatus: %v\n", err)
		os.Exit(2)
	}
	results, failed := make([]result, 0, len(objects)), false
	for _, obj := range objects {
		res, err := status.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			results = append(results, result{Error: err.Error()})
			failed = true
			continue
		}
		results = append(results, result{Status: res.Status.String(), Message: res.Message, Conditions: res.Conditions})
	}
	out, _ := json.Marshal(results)
	fmt.Println(string(out))
	if failed {
		os.Exit(1)
	}
}

// readObjects accepts one object, an array of objects or a List with items. Objects are decoded by
// the API machinery's unstructured decoder (whole numbers as int64, as NestedInt64 on
// metadata.generation needs), as a client would hand them to kstatus.
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
