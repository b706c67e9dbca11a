# fileinto without require
fileinto "x";
