using OrleansMeta.Silo.Hosting;

return SiloProgram.Run(args);
