"""jobtypes"""
