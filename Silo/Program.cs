using OrleansMeta.Silo.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddMetaSilo();

var app = builder.Build();
app.MapMetaSilo();
app.Run();

/// <summary>The silo's entry point; public so that tests can host it.</summary>
public partial class Program;
