// Package clix holds the mechanics of lbctl's command line that are not a
// command: moving flags that follow arguments before them (Normalize),
// usage errors with "did you mean" and exit status 2 (Main, Install), a
// duration flag that accepts days (DurationFlag), shell completion from
// the command definitions (Complete and the bash, zsh and fish scripts),
// one man page per command from the same definitions (ManPages), where an
// admin's trusted keys are (FindTrust) and writing rendered files into a
// directory lbctl owns (WriteTree).
//
// It knows urfave/cli and the file system, not the node: what a command
// completes from the node (VIP names) is a function main hands over. It
// must not import node/, systemd/, health/ or bpf/: it builds for any OS.
package clix
