package library

import "time"

// Limits on failed sign-ins per account (OWASP ASVS 2.2.1, NIST SP 800-63B
// 5.2.2: at most 100 failed attempts per hour on one account), counted in
// the shared store, so every replica sees every failure. A client the
// account trusts (it signed in from it before: a device, see SignInAttempt)
// keeps a few failures of its own and skips the backoff, so that a guesser
// who spends the account's failures does not lock its owner out.
const (
	// SignInFailureWindow is how long a failed sign-in counts.
	SignInFailureWindow = time.Hour
	// MaxSignInFailures is how many failed sign-ins an account may have in
	// the window, from every client: no attempt is admitted beyond it.
	MaxSignInFailures = 100
	// MaxUntrustedSignInFailures is how many of those may come from
	// clients the account does not trust: a guesser who never signed in
	// as the account gets at most this many guesses an hour. The rest of
	// MaxSignInFailures is left to the devices the account trusts.
	MaxUntrustedSignInFailures = 90
	// MaxDeviceSignInFailures is how many failed sign-ins one trusted
	// device may have in the window; beyond it the device is trusted no
	// more and waits like any other client.
	MaxDeviceSignInFailures = 5
	// SignInFreeFailures is how many failed sign-ins an account may have
	// in the window before an untrusted client must wait between tries.
	SignInFreeFailures = 5
	// SignInBackoffBase is the first wait after SignInFreeFailures; each
	// further failure doubles it, up to SignInBackoffMax.
	SignInBackoffBase = time.Second
	SignInBackoffMax  = 30 * time.Second
)

// SignInAttempt is one sign-in a store is asked to admit (AdmitSignIn).
type SignInAttempt struct {
	// Email is the account, normalized; it need not exist (a guesser's
	// attempts at an unknown email count the same, so the answers don't
	// tell which accounts exist).
	Email string
	// Device names a device the account trusts, one that signed in as
	// the account before and proved it with a token the server signed;
	// empty for any other client.
	Device string
	// At is when the attempt was made.
	At time.Time
}

// SignInTicket is an attempt AdmitSignIn admitted, for SettleSignIn.
type SignInTicket struct {
	SignInAttempt
	// Reserved is the id of the failure counted in advance for an
	// untrusted attempt, so that concurrent attempts on any replica can
	// never be admitted past the limit; 0 when none was (a trusted
	// device's attempt, recorded only if it fails).
	Reserved int64
}

// SignInBackoff returns how long an untrusted client must wait at at before
// it may try to sign in as an account that has had n failed sign-ins in the
// window, the oldest at oldest and the latest at last: 0 when it may try
// now. Past SignInFreeFailures each failure doubles the wait after the
// latest, from SignInBackoffBase up to SignInBackoffMax; at
// MaxUntrustedSignInFailures it waits until the oldest leaves the window.
func SignInBackoff(n int, oldest, last, at time.Time) time.Duration {
	var wait time.Duration
	if n >= SignInFreeFailures {
		d := SignInBackoffMax
		if shift := n - SignInFreeFailures; shift < 16 {
			d = min(SignInBackoffBase<<shift, SignInBackoffMax)
		}
		wait = last.Add(d).Sub(at)
	}
	if n >= MaxUntrustedSignInFailures {
		wait = max(wait, oldest.Add(SignInFailureWindow).Sub(at))
	}
	return max(wait, 0)
}

// TrustedSignInWait returns how long a trusted device that has had
// device failed sign-ins in the window, the oldest at oldest, must wait at
// at, when the account has had total: 0 while it may try now. A device
// past MaxDeviceSignInFailures is trusted no more (trusted is false), and
// waits as SignInBackoff says.
func TrustedSignInWait(device, total int, oldest, at time.Time) (wait time.Duration, trusted bool) {
	if device >= MaxDeviceSignInFailures {
		return 0, false
	}
	if total >= MaxSignInFailures {
		return max(oldest.Add(SignInFailureWindow).Sub(at), time.Second), true
	}
	return 0, true
}

// SignInRefused is the error of an attempt that must wait: 429 with
// Retry-After, the same for every account, known or not.
func SignInRefused(wait time.Duration) *Error {
	wait = max(wait, time.Second)
	return RetryAfterError(wait, "Too many failed sign-ins for this account; try again in %s.", wait.Round(time.Second))
}
