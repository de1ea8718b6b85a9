package transport

import (
	"encoding/json"
	"testing"
)

func TestCallbackBody(t *testing.T) {
	for state, want := range map[string]string{
		"completed": `{"partition":"p","file_id":"f","status":"indexed","task_id":"t","task_state":"COMPLETED","chunks":3}`,
		"failed":    `{"partition":"p","file_id":"f","status":"failed","task_id":"t","task_state":"FAILED","chunks":3,"error":"e"}`,
		"cancelled": `{"partition":"p","file_id":"f","status":"failed","task_id":"t","task_state":"CANCELLED","chunks":3,"error":"e"}`,
	} {
		errMsg := "e"
		if state == "completed" {
			errMsg = ""
		}
		b, _ := json.Marshal(NewCallbackBody("t", "p", "f", state, 3, errMsg))
		if string(b) != want {
			t.Errorf("%s: %s\nwant %s", state, b, want)
		}
	}
}
