"""The relationship effect study (`loanrisk effects`): does a lever (check-in, reminder,
education, complaint resolution) cause lower default, by how much, with intervals. Design,
doubly robust estimation, refutations, the simulated truth, results and the HTML section."""
