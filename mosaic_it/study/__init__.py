"""The study: baseline and Mosaic-IT arms over seeds, evaluated alike, compared with confidence intervals."""
