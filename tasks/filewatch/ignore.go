package filewatch

import (
	"path"
	"strings"
)

// vcsDir reports whether name is the directory of a version-control system: its
// churn is not the user's files changing.
func vcsDir(name string) bool {
	switch name {
	case ".git", ".hg", ".svn", ".bzr", "_darcs", ".jj", ".pijul", "CVS":
		return true
	}
	return false
}

// Ignored reports whether the slash-separated relative path p is left out: anything
// inside a version-control directory, and editor temp and backup files (vim's swap
// files and 4913 probe, Emacs's lock, autosave and backup files, *.tmp, JetBrains'
// safe-write files).
func Ignored(p string) bool {
	for part := range strings.SplitSeq(p, "/") {
		if vcsDir(part) {
			return true
		}
	}
	base := path.Base(p)
	switch {
	case base == "4913", // vim checks that it may create files in the directory
		strings.HasSuffix(base, "~"),
		strings.HasPrefix(base, ".#"),
		strings.HasPrefix(base, "#") && strings.HasSuffix(base, "#"),
		strings.HasSuffix(base, ".tmp"),
		strings.HasSuffix(base, "___jb_tmp___"), strings.HasSuffix(base, "___jb_old___"):
		return true
	}
	// vim swap files: .name.swp, then .swo, .swn, … down to .swa, and .swx for probes;
	// hidden, unless 'directory' puts them elsewhere (then .swp or .swx).
	switch ext := path.Ext(base); {
	case ext == ".swp" || ext == ".swx":
		return true
	case strings.HasPrefix(base, ".") && len(ext) == 4 && strings.HasPrefix(ext, ".sw") && ext[3] >= 'a' && ext[3] <= 'z':
		return true
	}
	return false
}
