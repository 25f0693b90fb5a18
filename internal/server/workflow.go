package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// WorkflowKind names a planning endpoint.
type WorkflowKind string

// The planning endpoints.
const (
	KindEstimate WorkflowKind = "estimate" // POST /v1/estimate: the JSON of `costwise estimate --json`
	KindPlan     WorkflowKind = "plan"     // POST /v1/plan: the JSON of `costwise plan --json`
	KindPreview  WorkflowKind = "preview"  // POST /v1/preview: the JSON of `costwise preview --format json`
)

const (
	kindEstimate = KindEstimate
	kindPlan     = KindPlan
	kindPreview  = KindPreview
)

// WorkflowService answers the planning endpoints. name is the workflow's
// name in messages ("request.toml"), src its TOML text (a JSON body is
// converted to TOML first). It returns the HTTP status (200, or 422 for a
// workflow no plan satisfies) and the body to encode as JSON.
type WorkflowService interface {
	Workflow(ctx context.Context, kind WorkflowKind, name string, src []byte) (status int, body any, err error)
}

// InputError is a workflow the service rejects as invalid: the server
// answers 400 with its message (every problem, one per line, with
// line:col).
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// workflow answers a planning endpoint.
func (s *Server) workflow(kind WorkflowKind) func(http.ResponseWriter, *http.Request, *Key) {
	return func(w http.ResponseWriter, r *http.Request, _ *Key) {
		if s.wf == nil {
			writeError(w, http.StatusNotImplemented, "invalid_request_error", "not_implemented", "this server has no workflow planner")
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		name, src := "request.toml", body
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch ct {
		case "application/toml", "text/toml", "text/x-toml", "text/plain", "":
		case "application/json":
			var err error
			if src, err = JSONToTOML(body); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_workflow", err.Error())
				return
			}
			name = "request.json (as TOML)"
		default:
			writeError(w, http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_media_type",
				fmt.Sprintf("Content-Type %q: send the workflow as application/toml, or as application/json with the same keys", ct))
			return
		}
		status, out, err := s.wf.Workflow(r.Context(), kind, name, src)
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				writeError(w, http.StatusBadRequest, "invalid_request_error", "invalid_workflow", ie.Msg)
				return
			}
			s.log.Error("workflow endpoint", "kind", kind, "err", err)
			writeError(w, http.StatusInternalServerError, "server_error", "internal_error", err.Error())
			return
		}
		writeJSONBody(w, status, out)
	}
}

// JSONToTOML converts a JSON workflow (an object with the same keys as the
// TOML format: arrays of objects become arrays of tables) to TOML text.
// Errors name the JSON path at fault.
func JSONToTOML(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("malformed JSON workflow: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the JSON workflow must be an object with the workflow format's keys (workflow, inputs, node ...)")
	}
	conv, err := tomlValue(obj, "")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(conv); err != nil {
		return nil, fmt.Errorf("the JSON workflow cannot be written as TOML: %v", err)
	}
	return buf.Bytes(), nil
}

func tomlValue(v any, path string) (any, error) {
	at := func() string {
		if path == "" {
			return "the top level"
		}
		return path
	}
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("JSON workflow: %s is null; TOML has no null, leave the key out", at())
	case json.Number:
		if i, err := x.Int64(); err == nil && !strings.ContainsAny(x.String(), ".eE") {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("JSON workflow: %s: %v", at(), err)
		}
		return f, nil
	case string, bool:
		return x, nil
	case []any:
		out := make([]any, len(x))
		allMaps := len(x) > 0
		for i, e := range x {
			c, err := tomlValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
			if _, ok := c.(map[string]any); !ok {
				allMaps = false
			}
		}
		if allMaps { // an array of tables
			tables := make([]map[string]any, len(out))
			for i, c := range out {
				tables[i] = c.(map[string]any)
			}
			return tables, nil
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if path != "" {
				p = path + "." + k
			}
			c, err := tomlValue(x[k], p)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("JSON workflow: %s has an unsupported value", at())
}
