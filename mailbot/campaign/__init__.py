"""The campaign: schedule, reminders, digest, status, export, blank forms and samples."""
