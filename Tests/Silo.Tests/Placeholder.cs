namespace OrleansMeta.Silo.Tests;
