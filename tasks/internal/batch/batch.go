// Package batch is what the stores' writers share: taking the writes that wait for
// them together, so that one transaction and one commit serve them all.
package batch

// Gather returns into with first and then whatever is waiting on ops, without
// waiting for more, up to max in all. A closed ops ends the gathering as an empty one
// does; the caller's range over ops then sees it closed.
func Gather[T any](ops <-chan T, first T, into []T, max int) []T {
	return More(ops, append(into, first), max)
}

// More returns into with whatever is waiting on ops, without waiting for more, up to
// max in all. A closed ops ends it as an empty one does.
func More[T any](ops <-chan T, into []T, max int) []T {
	for len(into) < max {
		select {
		case o, ok := <-ops:
			if !ok {
				return into
			}
			into = append(into, o)
		default:
			return into
		}
	}
	return into
}
