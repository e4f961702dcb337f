package client

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Timestamp turns a --since/--until value into the API's seconds[.nanos]:
// a duration before now ("10m"), an RFC 3339 date or time (local when it
// has no zone, as docker reads it), or already a Unix timestamp.
func Timestamp(value string, now time.Time) (string, error) {
	if d, err := time.ParseDuration(value); value != "0" && err == nil {
		return strconv.FormatInt(now.Add(-d).Unix(), 10), nil
	}
	// "2006-01-02" has two dashes; a third one is a negative zone offset.
	local := !strings.ContainsAny(value, "zZ+") && strings.Count(value, "-") != 3
	layout := dateLayout(value, local)
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, value, time.FixedZone(now.Zone()))
	} else {
		t, err = time.Parse(layout, value)
	}
	if err == nil {
		return fmt.Sprintf("%d.%09d", t.Unix(), int64(t.Nanosecond())), nil
	}
	if strings.Contains(value, "-") {
		return "", err // a date the layout did not take
	}
	sec, frac, _ := strings.Cut(value, ".")
	if _, err := strconv.ParseInt(sec, 10, 64); err != nil || frac != "" && !isDigits(frac) {
		return "", fmt.Errorf("failed to parse value as time or duration: %q", value)
	}
	return value, nil
}

// dateLayout picks the layout for value by its shape.
func dateLayout(value string, local bool) string {
	zone := "Z07:00"
	if local {
		zone = ""
	}
	switch {
	case strings.Contains(value, "."):
		return "2006-01-02T15:04:05.999999999" + zone
	case strings.Contains(value, "T"):
		colons := strings.Count(value, ":")
		if !local && !strings.ContainsAny(value, "zZ") && colons > 0 {
			colons-- // the zone's own colon
		}
		switch colons {
		case 0:
			return "2006-01-02T15" + zone
		case 1:
			return "2006-01-02T15:04" + zone
		}
		return "2006-01-02T15:04:05" + zone
	}
	return "2006-01-02" + zone
}
