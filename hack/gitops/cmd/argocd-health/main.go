// Command argocd-health runs an Argo CD resource health script (health.lua) over Kubernetes objects
// the way Argo CD does (util/lua in argo-cd): gopher-lua with the standard libraries skipped and only
// package, base and table opened, the object decoded into the global `obj`, a one-second deadline,
// and the table the script returns read as {status, message}; a status outside Argo CD's health
// codes becomes Unknown, as in Argo CD. (Argo CD also opens a reduced `os` library; the scripts this
// project ships do not use it, so a script that passes here passes there.)
//
// Usage: argocd-health SCRIPT < objects.json
// The input is one object, a JSON array of objects, or a List ({"items": [...]}); the output is a
// JSON array with one {"status", "message"} or {"error"} per object, in order. Exit status 1 when
// any object's script failed, 2 on bad usage or input.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// healthStatus is Argo CD's HealthStatus as a Lua script returns it.
type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

type result struct {
	healthStatus
	Error string `json:"error,omitempty"`
}

// validCodes are Argo CD's health status codes (gitops-engine pkg/health).
var validCodes = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		os.Exit(2)
	}
	objects, err := readObjects(os.Stdin)
	if err != nil {
		fmt.Fprintf(os.Stderr, "argocd-health: %v\n", err)
		os.Exit(2)
	}
	results, failed := make([]result, 0, len(objects)), false
	for _, obj := range objects {
		hs, err := executeHealthLua(obj, string(script))
		if err != nil {
			results = append(results, result{Error: err.Error()})
			failed = true
			continue
		}
		results = append(results, result{healthStatus: *hs})
	}
	out, _ := json.Marshal(results)
	fmt.Println(string(out))
	if failed {
		os.Exit(1)
	}
}

// readObjects accepts one object, an array of objects or a List with items.
func readObjects(r io.Reader) ([]map[string]any, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var many []map[string]any
	if json.Unmarshal(data, &many) == nil {
		return many, nil
	}
	var one map[string]any
	if err := json.Unmarshal(data, &one); err != nil {
		return nil, fmt.Errorf("input is neither a JSON object nor an array of objects: %w", err)
	}
	if items, ok := one["items"].([]any); ok && one["kind"] != nil {
		for _, it := range items {
			m, ok := it.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("a List item is not an object")
			}
			many = append(many, m)
		}
		return many, nil
	}
	return []map[string]any{one}, nil
}

// executeHealthLua runs the script as Argo CD's VM.ExecuteHealthLua does.
func executeHealthLua(obj map[string]any, script string) (*healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	raw, err := json.Marshal(encodeValue(ret))
	if err != nil {
		return nil, err
	}
	hs := &healthStatus{}
	if err := json.Unmarshal(raw, hs); err != nil {
		return nil, err
	}
	if !validCodes[hs.Status] {
		return &healthStatus{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return hs, nil
}

// decodeValue turns decoded JSON into Lua values: arrays become 1-based tables, null becomes nil.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// encodeValue turns a returned Lua value into JSON-ready Go values (tables with keys 1..n become
// arrays, like the JSON encoder Argo CD uses).
func encodeValue(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		if n := x.Len(); n > 0 {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, encodeValue(x.RawGetInt(i)))
			}
			return arr
		}
		m := map[string]any{}
		x.ForEach(func(k, val lua.LValue) { m[k.String()] = encodeValue(val) })
		return m
	}
	return nil
}
