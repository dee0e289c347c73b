"""What a person looks at: the HTML report, the static figures and the notebook summary."""
