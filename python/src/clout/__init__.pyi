"""stub placeholder"""
