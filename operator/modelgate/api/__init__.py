"""The modelgate.io API: pydantic models per version (v1alpha1), the status vocabulary (conditions)
and the CRD generator (crdgen) that turns the models into crds/."""
