package tasks

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// ValueField is a field of the tasks whose values Values lists: what a client
// completes an argument from.
type ValueField string

// The fields Values lists.
const (
	FieldProject  ValueField = "project"
	FieldAssignee ValueField = "assignee"
	FieldLabel    ValueField = "label"
	FieldTaskID   ValueField = "task_id"
)

// ValueFields lists every ValueField.
var ValueFields = []ValueField{FieldProject, FieldAssignee, FieldLabel, FieldTaskID}

// MaxValuesLimit is the most values one call of Values returns: as many as an MCP
// completion may carry.
const MaxValuesLimit = 100

// ValuesQuery selects values for Store.Values: up to Limit distinct values of Field
// among the tasks, never the empty one, that begin with Prefix (case matters).
// Projects, assignees and labels come in byte order; task ids, as their decimal
// forms, newest (highest) first. For FieldTaskID, Prefix is empty or the digits of a
// positive number without a leading zero.
type ValuesQuery struct {
	Field  ValueField
	Prefix string
	Limit  int
}

// IDRanges returns the ranges of task ids whose decimal forms begin with q.Prefix,
// each as its lowest and highest id, the highest range first: for "4", 40…49 after
// 400…499 and before 4…4. A store reads them in turn until it has q.Limit ids.
func (q ValuesQuery) IDRanges() [][2]int64 {
	if q.Prefix == "" {
		return [][2]int64{{1, math.MaxInt64}}
	}
	p, err := strconv.ParseInt(q.Prefix, 10, 64)
	if err != nil || p < 1 {
		return nil
	}
	var ranges [][2]int64
	for lo, width := p, int64(1); ; lo, width = lo*10, width*10 {
		hi := lo + (width - 1)
		if hi < lo { // past MaxInt64, which no id is above
			hi = math.MaxInt64
		}
		ranges = append(ranges, [2]int64{lo, hi})
		if lo > math.MaxInt64/10 {
			break
		}
	}
	slices.Reverse(ranges)
	return ranges
}

// Values returns up to limit (1 to MaxValuesLimit) of the values of field among the
// tasks that begin with prefix, as ValuesQuery says: the completions of an argument.
// A prefix no value can begin with (too long, or not digits for a task id) has none.
func (s *Service) Values(ctx context.Context, field ValueField, prefix string, limit int) ([]string, error) {
	if !slices.Contains(ValueFields, field) {
		return nil, Errorf(EInvalid, "field", "field must be among %s, got %q", join(ValueFields), field)
	}
	if limit < 1 || limit > MaxValuesLimit {
		return nil, Errorf(EInvalid, "limit", "limit must be 1 to %d, got %d", MaxValuesLimit, limit)
	}
	longest := map[ValueField]int{FieldProject: MaxProject, FieldAssignee: MaxAssignee, FieldLabel: MaxLabel, FieldTaskID: 19}[field]
	if utf8.RuneCountInString(prefix) > longest || !utf8.ValidString(prefix) || (field == FieldTaskID && !idPrefix(prefix)) {
		return []string{}, nil
	}
	values, err := s.store.Values(ctx, ValuesQuery{Field: field, Prefix: prefix, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("values of %s: %w", field, err)
	}
	return values, nil
}

// idPrefix reports whether s begins the decimal form of a task id: empty, or digits
// without a leading zero.
func idPrefix(s string) bool {
	if s == "" {
		return true
	}
	if s[0] == '0' {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
