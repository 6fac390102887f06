package capture

// Snapshot is the state of the host when recording starts: processes and
// their TCP sockets, so that connections opened before the recording still
// get addresses and names.
type Snapshot struct {
	Processes []*Process
	Sockets   []*Socket
	// ListeningPorts holds every TCP port in LISTEN state on the host
	// (all processes, all addresses).
	ListeningPorts map[uint16]bool
}

// Events returns the snapshot's entries in a stable order (processes, then
// sockets, by pid and fd) for [Writer.WriteSnapshot].
func (s *Snapshot) Events() []Event {
	evs := make([]Event, 0, len(s.Processes)+len(s.Sockets))
	for _, p := range s.Processes {
		evs = append(evs, p)
	}
	for _, k := range s.Sockets {
		evs = append(evs, k)
	}
	return evs
}
