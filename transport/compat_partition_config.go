package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
)

// First-class partitions, as openrag (2026) serves them in
// openrag/api/routers/admin/partitions.py with the request and response
// models of openrag/api/schemas/admin/partition_schemas.py:
// POST /partition/{p} creates an empty one (201, no body; 409 when it
// exists), PATCH /partition/{p} stores its configuration and answers the
// resolved configuration (PartitionDetailResponse), GET
// /partition/{p}/config answers the same. ragnode keeps the configuration
// in the ledger and returns it; it has no presets or per-partition
// embedders, so the values change nothing about indexing.

// partitionPatchFields are UpdatePartitionRequest's fields and whether an
// explicit null is allowed (only chat_llm: null clears it).
var partitionPatchFields = map[string]bool{
	"description":        false,
	"embedder":           false,
	"indexation_preset":  false,
	"retrieval_preset":   false,
	"chat_history_depth": false,
	"chat_llm":           true,
}

// partitionDefaults are PartitionDetailResponse's values for keys never set.
var partitionDefaults = map[string]any{
	"description":        "",
	"embedder":           "default",
	"indexation_preset":  "default",
	"retrieval_preset":   "default",
	"chat_history_depth": 0,
	"chat_llm":           nil,
}

func (c *compat) createPartition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("partition")
	if err := c.b.CreatePartition(r.Context(), name); err != nil {
		if StatusOf(err) == http.StatusConflict {
			writeDetail(w, http.StatusConflict, "Partition '%s' already exists.", name)
			return
		}
		writeCompatError(w, err, partitionNotFound(name))
		return
	}
	if ub, ok := c.users(); ok {
		caller, _ := CallerOf(r.Context())
		ub.PartitionCreated(r.Context(), caller, name) // the creator owns it (openrag)
	}
	w.WriteHeader(http.StatusCreated)
}

func (c *compat) partitionConfig(w http.ResponseWriter, r *http.Request) {
	p, ok := c.findPartition(w, r, r.PathValue("partition"))
	if !ok {
		return
	}
	WriteJSON(w, http.StatusOK, c.partitionDetail(p))
}

// updatePartition validates the JSON body as pydantic does for
// UpdatePartitionRequest (extra keys forbidden, names trimmed and
// non-blank, no explicit null but for chat_llm, chat_history_depth an
// integer >= 0, at least one field) and answers the resolved config.
func (c *compat) updatePartition(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("partition")
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCompatMetadata))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeDetail(w, http.StatusRequestEntityTooLarge, "Body exceeds %d bytes.", mbe.Limit)
			return
		}
		writeDetail(w, http.StatusBadRequest, "Reading body: %v", err)
		return
	}
	patch, verrs := parsePartitionPatch(raw)
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return
	}
	if err := c.b.UpdatePartition(r.Context(), name, patch); err != nil {
		writeCompatError(w, err, partitionNotFound(name))
		return
	}
	p, ok := c.findPartition(w, r, name)
	if !ok {
		return
	}
	WriteJSON(w, http.StatusOK, c.partitionDetail(p))
}

// parsePartitionPatch returns the keys to store (a nil value clears
// chat_llm) or pydantic's errors.
func parsePartitionPatch(raw []byte) (map[string]any, []fieldError) {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		return nil, []fieldError{{Type: "json_invalid", Loc: []string{"body"}, Msg: "JSON decode error",
			Input: map[string]any{}, Ctx: map[string]any{"error": err.Error()}}}
	}
	obj, ok := body.(map[string]any)
	if !ok {
		return nil, []fieldError{{Type: "model_attributes_type", Loc: []string{"body"},
			Msg: "Input should be a valid dictionary or object to extract fields from", Input: body}}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var verrs []fieldError
	out := map[string]any{}
	for _, k := range keys {
		v := obj[k]
		nullable, known := partitionPatchFields[k]
		switch {
		case !known:
			verrs = append(verrs, fieldError{Type: "extra_forbidden", Loc: []string{"body", k}, Msg: "Extra inputs are not permitted", Input: v})
		case v == nil && nullable:
			out[k] = nil
		case v == nil:
			verrs = append(verrs, fieldError{Type: "value_error", Loc: []string{"body", k},
				Msg: fmt.Sprintf("Value error, %s cannot be null", k), Input: nil, Ctx: map[string]any{"error": map[string]any{}}})
		case k == "chat_history_depth":
			n, ok := v.(json.Number)
			i, err := n.Int64()
			if !ok || err != nil {
				verrs = append(verrs, fieldError{Type: "int_type", Loc: []string{"body", k}, Msg: "Input should be a valid integer", Input: v})
				continue
			}
			if i < 0 {
				verrs = append(verrs, fieldError{Type: "greater_than_equal", Loc: []string{"body", k},
					Msg: "Input should be greater than or equal to 0", Input: i, Ctx: map[string]any{"ge": 0}})
				continue
			}
			out[k] = i
		default:
			s, ok := v.(string)
			if !ok {
				verrs = append(verrs, fieldError{Type: "string_type", Loc: []string{"body", k}, Msg: "Input should be a valid string", Input: v})
				continue
			}
			if k != "description" && k != "chat_llm" {
				// _normalize_name: trimmed, and blank is refused.
				if s = strings.TrimSpace(s); s == "" {
					verrs = append(verrs, fieldError{Type: "value_error", Loc: []string{"body", k},
						Msg: "Value error, name must be non-empty", Input: v, Ctx: map[string]any{"error": map[string]any{}}})
					continue
				}
			}
			out[k] = s
		}
	}
	if len(verrs) == 0 && len(obj) == 0 {
		verrs = append(verrs, fieldError{Type: "value_error", Loc: []string{"body"},
			Msg: "Value error, at least one field must be provided", Input: obj, Ctx: map[string]any{"error": map[string]any{}}})
	}
	return out, verrs
}

// partitionDetail is openrag's PartitionDetailResponse. document_count is
// the partition's file count (openrag counts its documents, i.e. files).
func (c *compat) partitionDetail(p PartitionView) map[string]any {
	out := map[string]any{
		"name":                p.Name,
		"indexation_pipeline": map[string]any{},
		"retrieval_pipeline":  map[string]any{},
		"dimension":           c.b.CompatInfo().Dimension,
		"created_at":          isoTime(p.Created),
		"document_count":      len(p.Files),
	}
	for k, def := range partitionDefaults {
		out[k] = def
		if v, ok := p.Config[k]; ok {
			out[k] = v
		}
	}
	return out
}
