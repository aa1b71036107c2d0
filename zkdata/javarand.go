package zkdata

// javaRandom is java.util.Random: a 48-bit linear congruential generator.
// ZooKeeper derives each session's password from it, so the importer can
// give every imported session the password its client already holds.
type javaRandom struct{ seed int64 }

const (
	javaRandMultiplier = 0x5DEECE66D
	javaRandMask       = (1 << 48) - 1
)

func newJavaRandom(seed int64) *javaRandom {
	return &javaRandom{seed: (seed ^ javaRandMultiplier) & javaRandMask}
}

func (r *javaRandom) next(bits uint) int32 {
	r.seed = (r.seed*javaRandMultiplier + 0xB) & javaRandMask
	return int32(uint64(r.seed) >> (48 - bits))
}

// nextInt is Random.nextInt().
func (r *javaRandom) nextInt() int32 { return r.next(32) }

// nextBytes is Random.nextBytes: each int fills up to four bytes, low
// byte first.
func (r *javaRandom) nextBytes(b []byte) {
	for i := 0; i < len(b); {
		rnd := r.nextInt()
		for n := min(len(b)-i, 4); n > 0; n-- {
			b[i] = byte(rnd)
			rnd >>= 8
			i++
		}
	}
}

// zkSuperSecret is ZooKeeperServer.superSecret.
const zkSuperSecret = 0xB3415C00

// SessionPasswd returns the password ZooKeeper gave session id
// (ZooKeeperServer.generatePasswd): 16 bytes from java.util.Random seeded
// with id ^ 0xB3415C00. ZooKeeper never stores it; it recomputes it, and so
// does the importer.
func SessionPasswd(id int64) []byte {
	p := make([]byte, 16)
	newJavaRandom(id ^ zkSuperSecret).nextBytes(p)
	return p
}
