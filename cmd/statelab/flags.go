package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/statelab/statelab/compare/strategy"
	"github.com/statelab/statelab/internal/store"
)

// flagSet is a flag.FlagSet whose every flag falls back to an environment
// variable. The built-in default is what -h shows; a secret's value from the
// environment is never shown.
type flagSet struct {
	*flag.FlagSet
	getenv func(string) string
}

// newFlagSet returns a flag set for the subcommand name whose flags read
// their environment variables through getenv and whose help goes to stderr.
func newFlagSet(name string, getenv func(string) string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flagSet{FlagSet: fs, getenv: getenv}
}

// String, Secret, Bool, Int, Float64, Int64, Duration, Var and Func define a
// flag whose help names its environment variable (strategy.EnvName).
func (f *flagSet) String(p *string, name, def, usage string) {
	f.StringVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Secret(p *string, name, usage string) {
	f.StringVar(p, name, "", usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.BoolVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.IntVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Float64(p *float64, name string, def float64, usage string) {
	f.Float64Var(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Int64(p *int64, name string, def int64, usage string) {
	f.Int64Var(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.DurationVar(p, name, def, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Var(v flag.Value, name, usage string) {
	f.FlagSet.Var(v, name, usage+" [$"+strategy.EnvName(name)+"]")
}

func (f *flagSet) Func(name, usage string, fn func([]byte) error) {
	f.FlagSet.Func(name, usage+" [$"+strategy.EnvName(name)+"]", func(s string) error { return fn([]byte(s)) })
}

// Parse parses the command line, then fills every flag the command line did
// not set from its environment variable.
func (f *flagSet) Parse(args []string) error {
	if err := f.FlagSet.Parse(args); err != nil {
		return err
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -; see -h)", f.Arg(0))
	}
	set := f.set()
	var err error
	f.VisitAll(func(fl *flag.Flag) {
		v := f.getenv(strategy.EnvName(fl.Name))
		if set[fl.Name] || v == "" || err != nil {
			return
		}
		if e := f.Set(fl.Name, v); e != nil {
			err = fmt.Errorf("$%s=%q: %v", strategy.EnvName(fl.Name), v, e)
		}
	})
	return err
}

// set names the flags that were set, on the command line or (after Parse)
// through the environment: a flag not among them keeps its default, which
// a scenario or --quick may replace.
func (f *flagSet) set() map[string]bool {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// storeFlags are the flags of a subcommand that runs replicas on a shared
// resource store: compare, matrix and perf.
type storeFlags struct{ kind, url string }

func (s *storeFlags) add(fs *flagSet) {
	fs.String(&s.kind, "store", store.SQLite, "the shared resource `store` the replicas run on: sqlite (a file in the work directory) or postgres (a private PostgreSQL started for the run and removed after it, on 127.0.0.1 with a random password; needs Debian's postgresql)")
	fs.Secret(&s.url, "store-url", "run on the PostgreSQL database at this postgres:// `URL` instead of a private server (implies -store postgres); a password goes in PGPASSWORD or in the environment variable, never on the command line")
}

// check refuses a password on the command line: argv is readable by every
// user of the machine (ps).
func (s *storeFlags) check(getenv func(string) string) error {
	if store.HasPassword(s.url) && getenv(strategy.EnvName("store-url")) != s.url {
		return fmt.Errorf("-store-url holds a password, and the command line shows it to every user of this machine; give it through PGPASSWORD or $%s", strategy.EnvName("store-url"))
	}
	if s.kind != store.SQLite && s.kind != store.Postgres {
		return fmt.Errorf("-store %q: use %s or %s", s.kind, store.SQLite, store.Postgres)
	}
	return nil
}
