package logs

import "bytes"

// Splitter cuts a stream of output into log lines: whole lines keep their
// newline; a line longer than MaxLine goes out in MaxLine pieces marked
// partial, and so does what is left at the end of the stream (docker's rules).
type Splitter struct{ pending []byte }

// Feed consumes p and calls emit for every line it completes. The slice given
// to emit is only valid during the call.
func (s *Splitter) Feed(p []byte, emit func(line []byte, partial bool)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := MaxLine - len(s.pending)
			if len(p) < room {
				s.pending = append(s.pending, p...)
				return
			}
			s.pending = append(s.pending, p[:room]...)
			emit(s.pending, true)
			s.pending = s.pending[:0]
			p = p[room:]
			continue
		}
		line := p[:i+1]
		if len(s.pending) == 0 && len(line) <= MaxLine {
			emit(line, false)
		} else {
			for len(s.pending)+len(line) > MaxLine {
				room := MaxLine - len(s.pending)
				s.pending = append(s.pending, line[:room]...)
				emit(s.pending, true)
				s.pending = s.pending[:0]
				line = line[room:]
			}
			s.pending = append(s.pending, line...)
			emit(s.pending, false)
			s.pending = s.pending[:0]
		}
		p = p[i+1:]
	}
	if cap(s.pending) > 2*MaxLine {
		s.pending = nil
	}
}

// Flush emits what is pending as a partial line (at the end of the stream).
func (s *Splitter) Flush(emit func(line []byte, partial bool)) {
	if len(s.pending) > 0 {
		emit(s.pending, true)
		s.pending = nil
	}
}
