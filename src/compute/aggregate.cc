// Placeholder until this file is written (issue 9).
