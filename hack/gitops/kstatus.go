package main

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// kstatusResult is sigs.k8s.io/cli-utils' kstatus Result: what Flux's healthChecks and `kpt live
// status` compute.
type kstatusResult struct {
	Status     string             `json:"status"`
	Message    string             `json:"message,omitempty"`
	Conditions []status.Condition `json:"conditions,omitempty"`
}

func computeKstatus(obj map[string]any) (any, error) {
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return nil, err
	}
	return kstatusResult{Status: res.Status.String(), Message: res.Message, Conditions: res.Conditions}, nil
}
