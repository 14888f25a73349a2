//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts Chromium in its own process group so that killing it
// also kills its renderer, GPU and utility processes.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
