package filewatch

// SetHandled sets the function w's Run calls with the path of each event it has
// folded into its pending changes. Call it before Run.
func SetHandled(w *Watcher, f func(name string)) { w.handled = f }
