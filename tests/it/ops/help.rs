//! The CLI's help: shell completions and an example in every help.

use super::*;

/// The subcommands a `--help` lists (without `help` itself).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn shell_completions() {
    let bash = keygate(&["completions", "bash"]);
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    assert!(bash.stdout.contains("keygate") && bash.stdout.contains("apikey"));
    assert!(bash.stdout.contains("complete"));
    for shell in ["zsh", "fish"] {
        let out = keygate(&["completions", shell]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains("apikey"), "{shell}");
    }
    let unknown = keygate(&["completions", "tcsh"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stdout.is_empty());
    assert!(unknown.stderr.contains("tcsh"));
}

#[test]
fn every_help_has_an_example() {
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = keygate(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
        assert!(
            out.stdout.contains("Example"),
            "keygate {args:?} has no example:\n{}",
            out.stdout
        );
        seen += 1;
        for sub in subcommands(&out.stdout) {
            let mut next = path.clone();
            next.push(sub);
            queue.push(next);
        }
    }
    // keygate itself, its commands and theirs.
    assert!(seen >= 25, "only {seen} help pages");
}
