package cpulimit

// Exported for the tests in package cpulimit_test.
var (
	ParseProcCgroup = parseProcCgroup
	StatFields      = statFields
	OwnerAlive      = ownerAlive
)

// Candidates returns where a parent group may go for a hierarchy mounted
// at mount, showing root, for a process in group own.
func Candidates(mount, root, own string) []string {
	return candidates(hierarchy{mount: mount, root: root}, own)
}

// Hierarchies returns the cgroup hierarchies of a mountinfo text as
// "v1 MOUNT ROOT CONTROLLERS" or "v2 MOUNT ROOT".
func Hierarchies(mountinfo string) []string {
	var out []string
	for _, h := range parseMountInfo(mountinfo) {
		if h.v2 {
			out = append(out, "v2 "+h.mount+" "+h.root)
			continue
		}
		s := "v1 " + h.mount + " " + h.root
		for i, c := range h.ctrls {
			if i == 0 {
				s += " "
			} else {
				s += ","
			}
			s += c
		}
		out = append(out, s)
	}
	return out
}
