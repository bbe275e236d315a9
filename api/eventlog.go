package api

import (
	"taskhub/broadcaster"
	"taskhub/tasks"
)

// StreamVocabulary is what the stream's filters may name: the domain's event types,
// statuses and sources.
func StreamVocabulary() broadcaster.Vocabulary {
	return broadcaster.Vocabulary{
		Types: names(tasks.EventTypes), Statuses: names(tasks.Statuses), Sources: names(tasks.Sources),
	}
}

func names[S ~string](values []S) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
