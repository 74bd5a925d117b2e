package matrix_test

import (
	"os"
	"testing"

	"github.com/statelab/statelab/internal/labtest"
)

// TestMain removes the statelab binary the end-to-end test builds.
func TestMain(m *testing.M) { os.Exit(labtest.Main(m)) }
