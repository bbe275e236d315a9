package broadcaster

import "net/url"

// Check checks a filter that did not come from a stream's query (a webhook
// endpoint's, say) by the rules ParseStreamRequest applies: the types, statuses and
// sources must be v's, and task ids positive. A RequestError names the filter's field.
func (v Vocabulary) Check(f Filter) error {
	for _, l := range []struct {
		name          string
		values, known []string
	}{{"types", f.Types, v.Types}, {"status", f.Statuses, v.Statuses}, {"source", f.Sources, v.Sources}} {
		if _, err := enumList(url.Values{l.name: l.values}, l.name, l.known); err != nil {
			return err
		}
	}
	for _, id := range f.TaskIDs {
		if id < 1 {
			return badParam("task_id", "task_id must be a list of task ids, got %d", id)
		}
	}
	return nil
}
