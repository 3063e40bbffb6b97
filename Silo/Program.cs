using OrleansMeta.Silo.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddMetaSilo();

var app = builder.Build();
app.MapMetaSilo();
app.Run();
