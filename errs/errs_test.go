package errs

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestKindSurvivesWrapping(t *testing.T) {
	base := Errorf(NotFound, "task %s not found", "t1")
	err := fmt.Errorf("cancel: %w", base)
	if !errors.Is(err, NotFound) || errors.Is(err, Conflict) {
		t.Fatalf("kind lost or wrong: %v", err)
	}
	if KindOf(err) != NotFound {
		t.Fatalf("KindOf = %v", KindOf(err))
	}
	if err.Error() != "cancel: task t1 not found" {
		t.Fatalf("message = %q", err.Error())
	}
}

func TestCauseStaysMatchable(t *testing.T) {
	err := Errorf(NoSpace, "store blob: %w", os.ErrPermission)
	if !errors.Is(err, NoSpace) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("kind or cause lost: %v", err)
	}
	w := Wrap(Invalid, os.ErrNotExist)
	if !errors.Is(w, Invalid) || !errors.Is(w, os.ErrNotExist) || w.Error() != os.ErrNotExist.Error() {
		t.Fatalf("wrap: %v", w)
	}
	if Wrap(Invalid, nil) != nil {
		t.Fatal("Wrap(nil) must be nil")
	}
	if KindOf(errors.New("plain")) != nil {
		t.Fatal("a plain error has no kind")
	}
}
