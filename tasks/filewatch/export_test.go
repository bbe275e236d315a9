package filewatch

// SetTestHookHandled sets the function Run calls with the path of each event it has
// taken in; nil unsets it. Call it only while no Watcher runs.
func SetTestHookHandled(f func(name string)) { testHookHandled = f }
