package broadcaster

import "testing"

func TestListen(t *testing.T) {
	h := New(Config{})
	var got []int64
	stop := h.Listen(func(e *Event) { got = append(got, e.Seq) })
	h.Publish(&Event{Seq: 1, Type: "task_created", Data: []byte(`{}`)})
	h.Publish(&Event{Seq: 2, Type: "task_updated", Data: []byte(`{}`)})
	stop()
	h.Publish(&Event{Seq: 3, Type: "task_updated", Data: []byte(`{}`)})
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("listener got %v, want [1 2]", got)
	}
}
