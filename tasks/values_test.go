package tasks_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"taskhub/tasks"
)

func TestIDRanges(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		want   string
	}{
		{"", "[[1 9223372036854775807]]"},
		{"0", "[]"},
		{"x", "[]"},
		{"4", "[[4000000000000000000 4999999999999999999] [400000000000000000 499999999999999999]"},
		{"92233720368547758", "[[9223372036854775800 9223372036854775807] [922337203685477580 922337203685477589] [92233720368547758 92233720368547758]]"},
		{"9223372036854775807", "[[9223372036854775807 9223372036854775807]]"},
		{"9223372036854775808", "[]"},
	} {
		got := fmt.Sprint(tasks.ValuesQuery{Field: tasks.FieldTaskID, Prefix: tc.prefix}.IDRanges())
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("IDRanges(%q) = %s, want it to begin %s", tc.prefix, got, tc.want)
		}
	}
	r := tasks.ValuesQuery{Prefix: "4"}.IDRanges()
	if len(r) != 19 || r[len(r)-1] != [2]int64{4, 4} || r[len(r)-2] != [2]int64{40, 49} {
		t.Errorf("IDRanges(4) = %v: want 19 ranges, ending 40…49, 4…4", r)
	}
	for i := 1; i < len(r); i++ {
		if r[i][1] >= r[i-1][0] || r[i][0] > r[i][1] {
			t.Errorf("IDRanges(4): %v before %v", r[i-1], r[i])
		}
	}
	if top := (tasks.ValuesQuery{Prefix: "9"}).IDRanges()[0]; top != [2]int64{9000000000000000000, math.MaxInt64} {
		t.Errorf("IDRanges(9) begins %v", top)
	}
}

func TestValues(t *testing.T) {
	svc, _ := newService(t)
	create(t, svc, tasks.Update{Project: tasks.Value("site")})
	ctx := context.Background()
	for _, tc := range []struct {
		field  tasks.ValueField
		prefix string
		want   string
	}{
		{tasks.FieldProject, "s", "[site]"},
		{tasks.FieldProject, strings.Repeat("s", tasks.MaxProject+1), "[]"},
		{tasks.FieldProject, "\xff", "[]"},
		{tasks.FieldTaskID, "", "[1]"},
		{tasks.FieldTaskID, "01", "[]"},
		{tasks.FieldTaskID, "1a", "[]"},
		{tasks.FieldTaskID, "-1", "[]"},
	} {
		got, err := svc.Values(ctx, tc.field, tc.prefix, 10)
		if err != nil || fmt.Sprint(got) != tc.want || got == nil {
			t.Errorf("Values(%s, %.20q) = %q, %v; want %s", tc.field, tc.prefix, got, err, tc.want)
		}
	}
	_, err := svc.Values(ctx, "title", "", 10)
	wantError(t, err, tasks.EInvalid, "field")
	for _, limit := range []int{0, tasks.MaxValuesLimit + 1} {
		_, err := svc.Values(ctx, tasks.FieldLabel, "", limit)
		wantError(t, err, tasks.EInvalid, "limit")
	}
}
