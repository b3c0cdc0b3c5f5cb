package jobs

import "encoding/json"

// Decode reads what a job keeps (its payload, a detail) as a T; an empty one is T's zero value.
func Decode[T any](b []byte) (T, error) {
	var v T
	if len(b) == 0 {
		return v, nil
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// Encode is v as a job keeps it.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data only
	}
	return b
}
